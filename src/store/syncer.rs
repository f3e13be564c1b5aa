//! `Syncer`: the fsync of the write-ahead log, on a helper thread, so a slow
//! disk (an SD card can take tens of milliseconds, sometimes more) never
//! stalls the event loop; and the checkpoints, on another.
//!
//! How durability is kept (see `Store::defer_sync`):
//! 1. The loop's connection runs with `synchronous=NORMAL`: `COMMIT` writes
//!    the transaction's WAL frames to the OS and returns without syncing.
//! 2. The loop then asks for sync number N and holds every answer that
//!    reports that transaction.
//! 3. The sync thread calls `fsync` on the WAL file, which makes every frame
//!    written before it durable, and answers "durable up to N" through a
//!    channel and the loop's `mio::Waker`.
//! 4. While a sync runs, the loop does not commit: its turns keep adding to
//!    the open transaction, committed once the sync is reported. So there is
//!    one commit per fsync, however many turns or messages it holds, and
//!    fewer WAL pages written (a page changed by ten turns is written once).
//! 5. Automatic checkpoints are off on the loop's connection. The checkpoint
//!    thread runs them (`wal_checkpoint(PASSIVE)`: sync the WAL, copy pages,
//!    sync the database file) beside the syncs, never in their way, once
//!    more than 4 MiB of log is waiting. SQLite restarts the log from its
//!    start after a complete checkpoint (at the first transaction begun
//!    then), keeping the file; `journal_size_limit` (set by `Store::open`)
//!    cuts the file back to 4 MiB then, so its size passes 4 MiB again only
//!    when 4 MiB of new frames are waiting. Under steady load a checkpoint
//!    rarely completes (the loop commits while it runs), the log cannot
//!    restart and the file grows: checkpoints then run for every 4 MiB
//!    added and once a second, and the log restarts soon after a pause.
//!
//! SQLite documents WAL with `synchronous=NORMAL` as safe from corruption;
//! the explicit WAL fsync before any answer adds the durability of `FULL`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Checkpoint once the WAL is larger than this; `Store::open` sets
/// `journal_size_limit` to it.
pub const CHECKPOINT_AT: u64 = 4 * 1024 * 1024;

/// While the log cannot restart, checkpoint at most this often (besides
/// once per `CHECKPOINT_AT` added).
const CHECKPOINT_AGAIN: Duration = Duration::from_secs(1);

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
    /// Starts the threads for the database at `db` (its WAL is `db-wal`).
    pub fn start(db: PathBuf, waker: Arc<mio::Waker>) -> Syncer {
        let (requests, rx) = mpsc::channel::<u64>();
        let (tx, done) = mpsc::channel();
        // One nudge waiting is enough: the checkpoint looks at the WAL itself.
        let (nudge, nudges) = mpsc::sync_channel::<()>(1);
        let wal = wal_path(&db);
        std::thread::Builder::new()
            .name("hearth-checkpoint".into())
            .spawn(move || checkpoints(db, nudges))
            // Failing to start a thread at start-up is fatal and rare.
            .expect("start the database checkpoint thread");
        std::thread::Builder::new()
            .name("hearth-syncer".into())
            .spawn(move || syncs(wal, rx, tx, waker, nudge))
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

/// The WAL file of the database at `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.to_path_buf().into_os_string();
    p.push("-wal");
    PathBuf::from(p)
}

fn syncs(
    wal_path: PathBuf,
    requests: Receiver<u64>,
    done: Sender<SyncDone>,
    waker: Arc<mio::Waker>,
    nudge: SyncSender<()>,
) {
    let mut wal: Option<File> = None;
    while let Ok(mut upto) = requests.recv() {
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
        if big {
            let _ = nudge.try_send(());
        }
    }
}

fn checkpoints(db: PathBuf, nudges: Receiver<()>) {
    let wal_path = wal_path(&db);
    let mut conn: Option<rusqlite::Connection> = None;
    // The WAL's length at the last checkpoint, when that was, and whether it
    // left frames behind (the loop committed while it ran).
    let mut checkpointed_at: u64 = 0;
    let mut last = Instant::now();
    let mut incomplete = false;
    loop {
        // After an incomplete checkpoint, try again a second later even if
        // no sync nudges (the load paused), so the next write can restart the log.
        if incomplete {
            let wait = (last + CHECKPOINT_AGAIN).saturating_duration_since(Instant::now());
            if let Err(RecvTimeoutError::Disconnected) = nudges.recv_timeout(wait) {
                return;
            }
        } else if nudges.recv().is_err() {
            return;
        }
        let wal_len = std::fs::metadata(&wal_path).map(|m| m.len()).unwrap_or(0);
        if wal_len < checkpointed_at {
            // SQLite restarted the log and cut the file back.
            checkpointed_at = 0;
        }
        // The log restarts only at a transaction begun right after a complete
        // checkpoint; under steady load that moment does not come and the
        // file grows. Then checkpoint for every 4 MiB added, and once a
        // second, not after every sync.
        if wal_len <= CHECKPOINT_AT {
            incomplete = false;
            continue;
        }
        if wal_len < checkpointed_at + CHECKPOINT_AT && last.elapsed() < CHECKPOINT_AGAIN {
            continue;
        }
        if conn.is_none() {
            conn = rusqlite::Connection::open(&db).ok();
            if let Some(c) = &conn {
                let _ = c.busy_timeout(Duration::from_secs(5));
            }
        }
        let Some(c) = &conn else { continue };
        // (busy, frames in the log, frames copied)
        let result = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        incomplete = match result {
            Ok((busy, log, copied)) => busy != 0 || copied < log,
            Err(e) => {
                log::warn!("checkpoint failed: {e}");
                false
            }
        };
        checkpointed_at = wal_len;
        last = Instant::now();
    }
}
