//! glibc's malloc raises its mmap threshold to the size of the last large block freed:
//! after identity's hashing workers let go of their 19 MiB working memories once, later
//! ones come from the heap and are never given back, so the process stays at its peak.
//! A fixed threshold (set through `GLIBC_TUNABLES`, which glibc reads only at start) keeps
//! large blocks mapped and returned on free. Without unsafe code there is no `mallopt`, so
//! `pdm serve` starts itself again, once, with the tunable added; an operator's own
//! `GLIBC_TUNABLES` setting for it wins.

use std::os::unix::process::CommandExt as _;

/// The tunable and its value: blocks of 4 MiB and more are always mapped.
const TUNABLE: &str = "glibc.malloc.mmap_threshold";
const THRESHOLD: &str = "4194304";
const VARIABLE: &str = "GLIBC_TUNABLES";

/// `GLIBC_TUNABLES` with the threshold added, or None when it already names one.
fn with_threshold(current: Option<&str>) -> Option<String> {
    match current {
        Some(tunables) if tunables.split(':').any(|t| t.starts_with(TUNABLE)) => None,
        Some(tunables) if !tunables.is_empty() => Some(format!("{tunables}:{TUNABLE}={THRESHOLD}")),
        _ => Some(format!("{TUNABLE}={THRESHOLD}")),
    }
}

/// Replaces this process with itself under the fixed threshold, unless it already runs
/// under one; on any failure carries on as it is.
pub fn settle() {
    let current = std::env::var(VARIABLE).ok();
    let Some(tunables) = with_threshold(current.as_deref()) else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(VARIABLE, tunables)
        .exec();
    // exec returns only on failure.
    eprintln!("pdm: running without a fixed malloc threshold ({err})");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_threshold_once_and_keeps_an_operators_choice() {
        assert_eq!(
            with_threshold(None).as_deref(),
            Some("glibc.malloc.mmap_threshold=4194304")
        );
        assert_eq!(
            with_threshold(Some("glibc.malloc.arena_max=2")).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304")
        );
        assert_eq!(
            with_threshold(Some("glibc.malloc.mmap_threshold=1024")),
            None
        );
    }
}
