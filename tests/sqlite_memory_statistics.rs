//! Its own test binary: the setting only takes before SQLite is first used in the process,
//! which no other test can promise.

#[test]
fn sqlite_counts_no_memory_once_statistics_are_off() {
    assert!(
        plantilla::store::sqlite_without_memory_statistics(),
        "SQLite refused the setting"
    );
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(100000));")
        .unwrap();
    // With statistics on, this counts every byte SQLite holds (the connection, its cache).
    assert_eq!(unsafe { rusqlite::ffi::sqlite3_memory_used() }, 0);
    // Later it is refused: SQLite is in use.
    assert!(!plantilla::store::sqlite_without_memory_statistics());
}
