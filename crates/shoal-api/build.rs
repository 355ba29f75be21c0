//! Embeds the web console's static files (`console/`, a flat directory) in the binary: writes
//! `$OUT_DIR/console_files.rs` with one `(name, bytes)` entry per file.

use std::path::Path;
use std::{env, fs};

fn main() {
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("console");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            println!("cargo:rerun-if-changed={}", path.display());
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if path.is_file() && !name.starts_with('.') {
                files.push((name.to_string(), path.display().to_string()));
            }
        }
    }
    files.sort();
    let mut out = String::from(
        "/// The console's files: (name, contents).\npub(crate) static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        out.push_str(&format!("    ({name:?}, include_bytes!({path:?})),\n"));
    }
    out.push_str("];\n");
    let target = Path::new(&env::var("OUT_DIR").unwrap_or_default()).join("console_files.rs");
    if let Err(e) = fs::write(&target, out) {
        panic!("writing {}: {e}", target.display());
    }
}
