//! `Store`: the one SQLite file, and the only code that speaks SQL.
//!
//! Durability contract:
//! 1. WAL mode. Opened with `synchronous=FULL` (a commit returns only after
//!    the WAL is synced; what `hearth admin` uses). The server switches to
//!    `defer_sync`: commits return at once and the `Syncer` thread syncs the
//!    WAL before any answer goes out, so an acknowledged write still
//!    survives power loss.
//! 2. Writes share one transaction (group commit): the first write opens
//!    it, `commit` ends it, at the end of a loop turn or, while the
//!    syncer is busy, of a later one (see `chat/mod.rs`). Each operation
//!    runs inside a savepoint, so a failing operation (disk full) undoes
//!    only itself; if SQLite rolls back the whole transaction instead,
//!    further writes are refused until `commit` reports the failure.
//! 3. Reads on the loop thread see the uncommitted writes; nothing
//!    that reports a write is sent before its commit is durable (the chat
//!    app holds those answers).

mod queries;
mod schema;
mod syncer;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use queries::*;
pub use syncer::{SyncDone, Syncer};

use crate::error::StartupError;

/// A storage failure. Every one is answered `unavailable` and logged; the
/// server keeps running.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// A transaction is open.
    in_tx: bool,
    /// The open transaction was lost (SQLite rolled it back after an error).
    transaction_broken: bool,
    /// The schema version the file had when opened (0: new).
    opened_at_version: i64,
}

/// The database file inside the data directory.
pub const DB_FILE: &str = "hearth.db";

impl Store {
    /// Opens (creating if needed) and migrates the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StartupError> {
        let path = data_dir.join(DB_FILE);
        Store::open_file(&path)
    }

    pub fn open_file(path: &Path) -> Result<Store, StartupError> {
        let fail = |e: rusqlite::Error| {
            StartupError::env(format!("cannot open the database {}: {e}", path.display()))
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        // Another process (a backup, `hearth admin`) may hold the lock briefly.
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(fail)?;
        // When SQLite restarts the WAL after a checkpoint, cut the reused file
        // back to the checkpoint threshold: disk space comes back, and the
        // file's size tells the syncer how much is waiting (see syncer.rs).
        conn.pragma_update(None, "journal_size_limit", syncer::CHECKPOINT_AT as i64).map_err(fail)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            in_tx: false,
            transaction_broken: false,
            opened_at_version: 0,
        };
        store.opened_at_version = schema::migrate(&mut store.conn).map_err(|e| match e {
            schema::MigrateError::TooNew(v) => StartupError::env(format!(
                "the database {} was written by a newer hearth (schema {v}); run that version or restore a backup",
                path.display()
            )),
            schema::MigrateError::Sql(e) => fail(e),
        })?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// "schema 2", "schema 2 (migrated from 1)" or "schema 2 (new)".
    pub fn schema_note(&self) -> String {
        let now = schema::latest();
        match self.opened_at_version {
            0 => format!("schema {now} (new)"),
            v if v < now => format!("schema {now} (migrated from {v})"),
            _ => format!("schema {now}"),
        }
    }

    /// Hands syncing to a `Syncer` thread: `COMMIT` no longer waits for the
    /// disk, and automatic checkpoints stop (the syncer runs them). Answers
    /// must then wait for the syncer's "durable" (see `syncer.rs`).
    pub fn defer_sync(&self) -> StoreResult<()> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// Makes everything committed durable now (at shutdown): a checkpoint
    /// that syncs the WAL and the database file.
    pub fn sync_now(&self) -> StoreResult<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Caps the database size in pages (tests use it to simulate a full disk).
    pub fn set_max_pages(&self, pages: u64) -> StoreResult<()> {
        self.conn.pragma_update(None, "max_page_count", pages)?;
        Ok(())
    }

    /// Runs one write operation inside the open transaction, in a savepoint:
    /// on error only this operation is undone.
    pub fn write<T>(&mut self, op: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        if self.transaction_broken {
            // Writing on would start a new transaction whose writes would
            // be committed with the failed one's answers turned into errors.
            return Err(StoreError("an earlier write of this transaction failed".into()));
        }
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        self.conn.execute_batch("SAVEPOINT op")?;
        match op(&self.conn) {
            Ok(v) => {
                self.conn.execute_batch("RELEASE op")?;
                Ok(v)
            }
            Err(e) => {
                if self.conn.is_autocommit() {
                    // SQLite rolled back the whole transaction: its
                    // earlier writes are gone too.
                    self.in_tx = false;
                    self.transaction_broken = true;
                } else {
                    let _ = self.conn.execute_batch("ROLLBACK TO op; RELEASE op");
                }
                Err(e.into())
            }
        }
    }

    /// Reads (they see the open transaction's writes).
    pub fn read<T>(&self, op: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        Ok(op(&self.conn)?)
    }

    /// Whether there are writes to commit (or a failed transaction to end).
    pub fn in_transaction(&self) -> bool {
        self.in_tx || self.transaction_broken
    }

    /// Whether SQLite rolled the open transaction back: `commit` will
    /// fail, and should be called at once.
    pub fn transaction_broken(&self) -> bool {
        self.transaction_broken
    }

    /// Commits the open transaction (synced at once, unless `defer_sync`
    /// handed syncing to the `Syncer`). `Err` means none of its writes is
    /// stored: the caller must not report any as done.
    pub fn commit(&mut self) -> StoreResult<()> {
        // After a rollback `write` opens no new transaction, so there is
        // nothing to commit: only the failure to report.
        if std::mem::take(&mut self.transaction_broken) {
            return Err(StoreError("the transaction was rolled back".into()));
        }
        if !self.in_tx {
            return Ok(());
        }
        self.in_tx = false;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        Ok(())
    }

    /// Size of the database file and its WAL, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let wal = syncer::wal_path(&self.path);
        [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Writes a consistent copy of the database to `dest` with SQLite's
    /// online backup, copying every page in one step: in WAL mode that step
    /// reads one snapshot while writers go on, so the copy holds exactly what
    /// was committed when it began.
    pub fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        use rusqlite::backup::{Backup, StepResult};
        let mut target = Connection::open(dest)?;
        let backup = Backup::new(&self.conn, &mut target)?;
        for _ in 0..500 {
            match backup.step(-1)? {
                StepResult::Done => return Ok(()),
                StepResult::More => {}
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        Err(StoreError("the database stayed busy; try again".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hearth-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_operation_undoes_only_itself() {
        let dir = temp_db("savepoint");
        let mut s = Store::open(&dir).unwrap();
        s.write(|c| c.execute("INSERT INTO meta(key, value) VALUES ('a', '1')", [])).unwrap();
        let err = s.write(|c| {
            c.execute("INSERT INTO meta(key, value) VALUES ('b', '2')", [])?;
            c.execute("INSERT INTO meta(key, value) VALUES ('a', 'dup')", [])
        });
        assert!(err.is_err());
        s.commit().unwrap();
        let keys: Vec<String> = s
            .read(|c| {
                let mut st = c.prepare("SELECT key FROM meta WHERE key IN ('a','b') ORDER BY key")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .unwrap();
        assert_eq!(keys, vec!["a".to_string()]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_newer_schema_is_refused_not_damaged() {
        let dir = temp_db("newer");
        {
            let s = Store::open(&dir).unwrap();
            s.conn.pragma_update(None, "user_version", 9999).unwrap();
        }
        let err = Store::open(&dir).err().expect("refused");
        assert!(err.to_string().contains("newer hearth"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Waits (bounded) until the syncer reports commit `seq` durable.
    fn wait_durable(syncer: &Syncer, seq: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if syncer.finished().iter().any(|d| d.upto >= seq && d.result.is_ok()) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "sync {seq} never finished");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn the_wal_is_checkpointed_and_cut_back_once_it_passes_the_threshold() {
        let dir = temp_db("checkpoint");
        let mut s = Store::open(&dir).unwrap();
        s.defer_sync().unwrap();
        let poll = mio::Poll::new().unwrap();
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let syncer = Syncer::start(s.path().to_path_buf(), waker);
        let wal = syncer::wal_path(s.path());
        let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

        // About 6 MiB of commits, each made durable before the next.
        let blob = "x".repeat(64 * 1024);
        let mut seq = 0;
        let mut largest = 0;
        for i in 0..96 {
            s.write(|c| c.execute("INSERT INTO meta(key, value) VALUES (?1, ?2)", (format!("k{i}"), &blob)))
                .unwrap();
            s.commit().unwrap();
            seq += 1;
            syncer.request(seq);
            wait_durable(&syncer, seq);
            largest = largest.max(wal_len());
        }
        assert!(largest > syncer::CHECKPOINT_AT, "the WAL never passed the threshold ({largest} bytes)");

        // Quiet now: the syncer checkpoints, the next commit restarts the WAL
        // and cuts the file back, so a full-size file no longer means work.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            s.write(|c| c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('tick', 'x')", []))
                .unwrap();
            s.commit().unwrap();
            seq += 1;
            syncer.request(seq);
            wait_durable(&syncer, seq);
            if wal_len() <= syncer::CHECKPOINT_AT {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL stayed at {} bytes after the load stopped",
                wal_len()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let stored: i64 = s
            .read(|c| c.query_row("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(stored, 96);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn reopening_keeps_data_and_epoch() {
        let dir = temp_db("reopen");
        let epoch = {
            let mut s = Store::open(&dir).unwrap();
            let e = s.read(queries::epoch).unwrap();
            s.write(|c| queries::insert_user(c, "Ann", "hash", "admin", 1)).unwrap();
            s.commit().unwrap();
            e
        };
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.read(queries::epoch).unwrap(), epoch);
        assert_eq!(s.read(queries::load_users).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
