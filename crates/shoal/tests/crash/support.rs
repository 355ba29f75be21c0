//! Shared pieces: the binary, the admin key, a seeded RNG, item conversions.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use shoal_tests::ProcessNode;

pub const BIN: &str = env!("CARGO_BIN_EXE_shoal");
pub const KEY_ID: &str = "AKIDCRASHTEST0000001";
pub const SECRET: &str = "crash-test-secret-00000000000000000000000";

/// A `ProcessNode` on `data_dir` with the test's admin key.
pub async fn start_node(data_dir: &std::path::Path) -> ProcessNode {
    ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .data_dir(data_dir)
        .start()
        .await
}

/// SplitMix64: small, seedable, good enough to pick operations and delays.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// A seed from `var` when set (decimal), else from the clock.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a decimal u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// The setup of a repeated-SIGKILL run: its seed (`SHOAL_CRASH_SEED`, printed for replay), the
/// number of kill cycles (`cycles_var`, else `default_cycles`), an RNG from the seed and an empty
/// data directory.
pub struct CrashRun {
    pub seed: u64,
    pub cycles: u64,
    pub rng: Rng,
    /// Holds the data directory; removed on drop.
    pub dir: tempfile::TempDir,
    pub data: std::path::PathBuf,
}

impl CrashRun {
    /// Reads the settings and prints them, `label` first.
    pub fn new(label: &str, cycles_var: &str, default_cycles: u64) -> CrashRun {
        let seed = seed_from_env("SHOAL_CRASH_SEED");
        let cycles: u64 = std::env::var(cycles_var)
            .ok()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{cycles_var} must be a number"))
            })
            .unwrap_or(default_cycles);
        eprintln!("{label}: seed {seed} (replay with SHOAL_CRASH_SEED={seed}), {cycles} cycles");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        CrashRun {
            seed,
            cycles,
            rng: Rng::new(seed),
            dir,
            data,
        }
    }
}

/// An item's non-key attributes as `name → number` (every test attribute is a number).
pub type Numbers = BTreeMap<String, String>;

/// The numeric attributes of `item`, except `pk`. Panics on other types.
pub fn numbers(item: &std::collections::HashMap<String, AttributeValue>) -> Numbers {
    item.iter()
        .filter(|(k, _)| k.as_str() != "pk")
        .map(|(k, v)| match v {
            AttributeValue::N(n) => (k.clone(), n.clone()),
            other => panic!("attribute {k} is not a number: {other:?}"),
        })
        .collect()
}

/// `{"S": v}`.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// `{"N": v}`.
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
