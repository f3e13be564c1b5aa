//! `Syncer`: the fsync of the write-ahead log, on a helper thread, so a slow
//! disk (an SD card can take tens of milliseconds, sometimes more) never
//! stalls the event loop.
//!
//! How durability is kept (see `Store::defer_sync`):
//! 1. The loop's connection runs with `synchronous=NORMAL`: `COMMIT` writes
//!    the transaction's WAL frames to the OS and returns without syncing.
//! 2. The loop then asks for sync number N and holds every answer that
//!    reports that transaction.
//! 3. This thread calls `fsync` on the WAL file, which makes every frame
//!    written before it durable, and answers "durable up to N" through a
//!    channel and the loop's `mio::Waker`. Requests that pile up while a
//!    sync runs are served by the next single sync (group commit).
//! 4. Automatic checkpoints are off on the loop's connection; this thread
//!    runs them (`wal_checkpoint(PASSIVE)`, which syncs the WAL, copies
//!    pages and syncs the database file) when the WAL passes 4 MiB. The
//!    WAL file is reused after a checkpoint, not shrunk, so its size alone
//!    would ask for a checkpoint after every sync (two more fsyncs each
//!    time); `journal_size_limit` (set by `Store::open`) cuts it back to
//!    4 MiB when SQLite restarts it, so it only passes 4 MiB again when 4 MiB
//!    of new frames are waiting. A checkpoint runs when no sync is waiting
//!    for it, or at most once a second under steady load.
//!
//! SQLite documents WAL with `synchronous=NORMAL` as safe from corruption;
//! the explicit WAL fsync before any answer adds the durability of `FULL`.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Checkpoint once the WAL is larger than this; `Store::open` sets
/// `journal_size_limit` to it.
pub const CHECKPOINT_AT: u64 = 4 * 1024 * 1024;

/// Under steady load, when a sync is always waiting, checkpoint no more
/// often than this: each checkpoint delays the next sync by two fsyncs.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A sync finished: every commit up to `upto` is durable, or not.
pub struct SyncDone {
    pub upto: u64,
    pub result: Result<(), String>,
}

pub struct Syncer {
    requests: Sender<u64>,
    done: Receiver<SyncDone>,
}

impl Syncer {
    /// Starts the thread for the database at `db` (its WAL is `db-wal`).
    pub fn start(db: PathBuf, waker: Arc<mio::Waker>) -> Syncer {
        let (requests, rx) = mpsc::channel::<u64>();
        let (tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("hearth-syncer".into())
            .spawn(move || run(db, rx, tx, waker))
            // Failing to start a thread at start-up is fatal and rare.
            .expect("start the database sync thread");
        Syncer { requests, done }
    }

    /// Asks for everything committed so far (commit number `seq`) to be made durable.
    pub fn request(&self, seq: u64) {
        let _ = self.requests.send(seq);
    }

    /// Syncs finished since the last call.
    pub fn finished(&self) -> Vec<SyncDone> {
        self.done.try_iter().collect()
    }
}

fn run(db: PathBuf, requests: Receiver<u64>, done: Sender<SyncDone>, waker: Arc<mio::Waker>) {
    let wal_path = {
        let mut p = db.clone().into_os_string();
        p.push("-wal");
        PathBuf::from(p)
    };
    let mut wal: Option<File> = None;
    let mut checkpointer: Option<rusqlite::Connection> = None;
    let mut last_checkpoint: Option<Instant> = None;
    // A request taken from the channel while deciding whether to checkpoint.
    let mut waiting: Option<u64> = None;
    loop {
        let Some(mut upto) = waiting.take().or_else(|| requests.recv().ok()) else { return };
        // Everything asked for meanwhile is covered by this one sync.
        while let Ok(later) = requests.try_recv() {
            upto = upto.max(later);
        }
        if wal.is_none() {
            wal = File::open(&wal_path).ok();
        }
        let result = match &wal {
            Some(f) => f.sync_data().map_err(|e| format!("syncing {}: {e}", wal_path.display())),
            None => Err(format!("cannot open {}", wal_path.display())),
        };
        if done.send(SyncDone { upto, result }).is_err() {
            return;
        }
        let _ = waker.wake();
        let big = std::fs::metadata(&wal_path).map(|m| m.len() > CHECKPOINT_AT).unwrap_or(false);
        if !big {
            continue;
        }
        match requests.try_recv() {
            Ok(seq) => waiting = Some(seq),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => return,
        }
        let due = last_checkpoint.is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY);
        if waiting.is_some() && !due {
            continue;
        }
        if checkpointer.is_none() {
            checkpointer = rusqlite::Connection::open(&db).ok();
            if let Some(c) = &checkpointer {
                let _ = c.busy_timeout(Duration::from_secs(5));
            }
        }
        if let Some(c) = &checkpointer {
            if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                log::warn!("checkpoint failed: {e}");
            }
        }
        last_checkpoint = Some(Instant::now());
    }
}
