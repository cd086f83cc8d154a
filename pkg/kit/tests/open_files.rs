//! The open-file limit at start-up, in a test binary of its own: the limit is the process's.

use rlimit::Resource;

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let (_, hard) = Resource::NOFILE.get().expect("getrlimit");
    // Start below the hard limit, as under newer Docker (soft 1024) or a login shell.
    let low = 256.min(hard);
    Resource::NOFILE
        .set(low, hard)
        .expect("lower the soft limit");

    let now = kit::startup::raise_open_files().expect("raise");

    assert_eq!(Resource::NOFILE.get().expect("getrlimit"), (hard, hard));
    assert_eq!(now, hard);
}
