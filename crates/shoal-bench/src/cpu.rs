//! CPU time of a process (user + system) from `/proc/PID/stat` (Linux).

use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times. Linux reports `USER_HZ`, which is 100 on
/// every mainstream architecture; reading `sysconf(_SC_CLK_TCK)` would need `libc`.
const TICKS_PER_SECOND: u64 = 100;

/// Which process to read.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// This process.
    Current,
    /// Another process by id.
    Pid(u32),
}

/// The process's total user + system CPU time so far (10 ms resolution).
///
/// # Errors
/// When `/proc/PID/stat` cannot be read or parsed (no such process, not Linux).
pub fn cpu_time(process: Process) -> std::io::Result<Duration> {
    let path = match process {
        Process::Current => "/proc/self/stat".to_string(),
        Process::Pid(pid) => format!("/proc/{pid}/stat"),
    };
    let stat = std::fs::read_to_string(&path)?;
    parse_stat(&stat)
        .map(|ticks| Duration::from_millis(ticks.saturating_mul(1000 / TICKS_PER_SECOND)))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("cannot parse {path}"),
            )
        })
}

/// utime + stime in ticks: fields 14 and 15, counted after the `)` that ends the command name
/// (which may itself contain spaces and parentheses).
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // After ')': field 3 (state) is the first, so utime (14) is index 11 and stime index 12.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_command_name_with_spaces() {
        let stat =
            "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 4 0 1 0";
        assert_eq!(parse_stat(stat), Some(325));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = cpu_time(Process::Current).unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = cpu_time(Process::Current).unwrap();
        assert!(after > before, "{before:?} -> {after:?}");
    }
}
