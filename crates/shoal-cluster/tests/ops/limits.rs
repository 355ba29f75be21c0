//! Process limits a node sets at start, read from `/proc/<pid>/limits` of a real process that
//! was started with a low open-files soft limit and core dumps allowed.

use crate::support::Spawn;

/// `(soft, hard)` of the `/proc/<pid>/limits` line starting with `name` (`unlimited` = MAX).
fn limit(limits: &str, name: &str) -> (u64, u64) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{limits}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    let num = |f: &str| {
        if f == "unlimited" {
            u64::MAX
        } else {
            f.parse().unwrap()
        }
    };
    (num(fields[0]), num(fields[1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_raises_its_open_files_limit_and_disables_core_dumps() {
    let _serial = crate::SERIAL.lock().await;
    let own = std::fs::read_to_string("/proc/self/limits").unwrap();
    let (_, nofile_hard) = limit(&own, "Max open files");
    let (_, core_hard) = limit(&own, "Max core file size");
    assert!(
        nofile_hard > 512,
        "this test needs a hard open-files limit above 512 (it is {nofile_hard})"
    );
    let dir = tempfile::tempdir().unwrap();
    // The node starts with a soft limit of 512 and core dumps allowed up to the hard limit.
    let wrapper = "ulimit -S -n 512 && ulimit -S -c \"$(ulimit -H -c)\"";
    let mut spawn = Spawn::new(dir.path(), "limits");
    spawn.wrapper = Some(wrapper);
    let mut node = spawn.start();
    node.wait_healthy().await;

    let limits = std::fs::read_to_string(format!("/proc/{}/limits", node.pid())).unwrap();
    println!("/proc/<node>/limits:\n{limits}");
    let (soft, hard) = limit(&limits, "Max open files");
    assert_eq!(
        (soft, hard),
        (nofile_hard, nofile_hard),
        "the soft open-files limit is raised from 512 to the hard limit"
    );
    assert_eq!(
        limit(&limits, "Max core file size"),
        (0, 0),
        "core dumps are off (the hard limit was {core_hard})"
    );
    let log = node.stderr_text();
    assert!(
        log.contains("open files limit") && log.contains(&format!("soft={nofile_hard}")),
        "the raised limit is logged at info\n{log}"
    );
    assert!(
        log.contains("before=512"),
        "the log shows the old limit\n{log}"
    );
    assert!(
        log.contains("dumpable=false"),
        "the process is made non-dumpable\n{log}"
    );
    node.terminate().await;
}
