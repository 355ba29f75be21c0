//! Key choice: uniform or zipfian over the key space `0..n`.
//!
//! The zipfian generator is the one YCSB uses (Gray et al., "Quickly Generating Billion-Record
//! Synthetic Databases", SIGMOD 1994): constant-time sampling after an O(n) set-up that sums
//! `zeta(n, theta)`. Ranks are scrambled with a 64-bit FNV hash (like YCSB's
//! `ScrambledZipfianGenerator`) so the hot keys are spread over the key space instead of being
//! the first few keys of one partition.

use rand::Rng;

/// YCSB's default skew.
pub const DEFAULT_THETA: f64 = 0.99;

/// A key-index generator over `0..n`.
#[derive(Debug, Clone)]
pub enum KeyGen {
    /// Every index equally likely.
    Uniform { n: u64 },
    /// Zipfian over ranks, ranks scrambled to indexes.
    Zipfian(Zipfian),
}

impl KeyGen {
    /// A uniform generator over `0..n` (`n` is raised to 1 if 0).
    pub fn uniform(n: u64) -> Self {
        KeyGen::Uniform { n: n.max(1) }
    }

    /// A scrambled zipfian generator over `0..n` with skew `theta` (0 < theta < 1).
    pub fn zipfian(n: u64, theta: f64) -> Self {
        KeyGen::Zipfian(Zipfian::new(n, theta))
    }

    /// The number of distinct indexes.
    pub fn len(&self) -> u64 {
        match self {
            KeyGen::Uniform { n } => *n,
            KeyGen::Zipfian(z) => z.n,
        }
    }

    /// Never true: a generator has at least one index.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The next key index, in `0..self.len()`.
    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self {
            KeyGen::Uniform { n } => rng.random_range(0..*n),
            KeyGen::Zipfian(z) => fnv64(z.next_rank(rng)) % z.n,
        }
    }
}

/// Zipfian ranks over `0..n`: rank `r` has probability proportional to `1 / (r + 1)^theta`.
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// Sets up the generator (O(n) to sum `zeta(n, theta)`; about 1 ms per million keys).
    /// `n` is raised to 2 and `theta` is clamped into `0.01..=0.999`.
    pub fn new(n: u64, theta: f64) -> Self {
        let n = n.max(2);
        let theta = theta.clamp(0.01, 0.999);
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2, theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipfian {
            n,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    /// The next rank, in `0..n` (0 is the most popular).
    pub fn next_rank<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// The exact probability of rank `r` (for tests and reports).
    pub fn probability(&self, r: u64) -> f64 {
        1.0 / ((r + 1) as f64).powf(self.theta) / self.zetan
    }
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

fn fnv64(v: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn zipfian_rank_frequencies_follow_the_zipf_law() {
        let z = Zipfian::new(1000, DEFAULT_THETA);
        let mut rng = StdRng::seed_from_u64(7);
        let samples = 400_000;
        let mut counts = vec![0u64; 1000];
        for _ in 0..samples {
            counts[z.next_rank(&mut rng) as usize] += 1;
        }
        // The head ranks (sampled exactly by the generator) within 3% of the law.
        for r in 0..2u64 {
            let observed = counts[r as usize] as f64 / samples as f64;
            let expected = z.probability(r);
            assert!(
                (observed - expected).abs() < expected * 0.03,
                "rank {r}: observed {observed}, expected {expected}"
            );
        }
        // The approximation for the tail: popularity falls with rank, and the top 10% of ranks
        // take most of the samples, like the law says (about 70% for n=1000, theta=0.99).
        let top10: u64 = counts[..100].iter().sum();
        let expected_top10: f64 = (0..100).map(|r| z.probability(r)).sum();
        let observed_top10 = top10 as f64 / samples as f64;
        assert!(
            (observed_top10 - expected_top10).abs() < 0.05,
            "top 10%: observed {observed_top10}, expected {expected_top10}"
        );
        assert!(counts[0] > counts[10] && counts[10] > counts[500]);
    }

    #[test]
    fn generated_indexes_stay_in_the_key_space() {
        let mut rng = StdRng::seed_from_u64(1);
        for g in [KeyGen::uniform(37), KeyGen::zipfian(37, DEFAULT_THETA)] {
            assert_eq!(g.len(), 37);
            let mut seen = [false; 37];
            for _ in 0..100_000 {
                let i = g.next(&mut rng);
                assert!(i < 37);
                seen[i as usize] = true;
            }
            // Every key is reachable (scrambling hashes ranks, so a few may collide; most not).
            assert!(seen.iter().filter(|s| **s).count() >= 20, "{g:?}");
        }
    }

    #[test]
    fn uniform_keys_are_spread_evenly() {
        let g = KeyGen::uniform(10);
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[g.next(&mut rng) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
