//! Who holds the writer: the appends and uploader requests queued while it is taken, giving
//! it back (or to the drainer when work queued up), and the drainer task that commits queued
//! events in groups and serves the uploader, on a blocking thread when it must wait for a file.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, oneshot, watch};

use super::read::View;
use super::writer::Writer;
use super::{Spool, SpoolError, Taken};

/// The most events committed in one write; bounds the wait of the last one in it.
const MAX_GROUP: usize = 4096;

/// Where the writer answers one request.
pub(super) type Reply<T> = oneshot::Sender<Result<T, SpoolError>>;

/// The uploader's side: where to read the oldest events, and which ones a collector took.
/// Both are answered in memory; the reading and the cursor's writing happen without the writer.
pub(super) enum Upload {
    View(Reply<View>),
    Ack(Taken, Reply<u64>),
}

/// What waits for the writer, and the writer itself when nobody holds it.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) writer: Option<Writer>,
    pub(super) appends: Vec<(Vec<u8>, Reply<()>)>,
    pub(super) uploads: Vec<Upload>,
    /// The writer was lost (a blocking thread panicked, the runtime is going): nothing more
    /// can be committed, and saying so beats waiting forever.
    pub(super) stopped: bool,
}

pub(super) type Shared = Arc<Mutex<Queue>>;

/// Locks briefly: no I/O is ever done under this lock.
pub(super) fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Spool {
    /// One request of the uploader: answered here when the writer is free, else by whoever
    /// holds it next.
    pub(super) async fn upload<T>(
        &self,
        request: impl FnOnce(Reply<T>) -> Upload,
    ) -> Result<T, SpoolError> {
        let (done, wait) = oneshot::channel();
        let request = request(done);
        let taken = {
            let mut queue = lock(&self.queue);
            if queue.stopped {
                return Err(SpoolError::Stopped);
            }
            match queue.writer.take() {
                Some(writer) => Some((writer, request)),
                // Queued under the same lock that saw the writer taken: its holder finds it
                // when it gives the writer back.
                None => {
                    queue.uploads.push(request);
                    None
                }
            }
        };
        if let Some((mut writer, request)) = taken {
            let served = catch_unwind(AssertUnwindSafe(move || {
                let slow = serve(&mut writer, request);
                (writer, slow)
            }));
            let Ok((writer, slow)) = served else {
                stop(&self.queue);
                return Err(SpoolError::Stopped);
            };
            if let Some(slow) = slow {
                lock(&self.queue).uploads.push(slow);
            }
            self.give_back(writer);
        }
        wait.await.map_err(|_| SpoolError::Stopped)?
    }

    /// Puts the writer back, or hands it to the drainer when work queued up meanwhile.
    pub(super) fn give_back(&self, writer: Writer) {
        let mut queue = lock(&self.queue);
        if queue.appends.is_empty() && queue.uploads.is_empty() {
            queue.writer = Some(writer);
            return;
        }
        drop(queue);
        self.to_drainer(writer);
    }

    pub(super) fn to_drainer(&self, writer: Writer) {
        if self.drainer.send(writer).is_err() {
            // The drainer is gone only when the runtime is: nothing queued will be committed.
            stop(&self.queue);
        }
    }
}

/// Fails everything queued, and everything that comes later.
pub(super) fn stop(queue: &Mutex<Queue>) {
    let mut queue = lock(queue);
    queue.stopped = true;
    let appends = std::mem::take(&mut queue.appends);
    let uploads = std::mem::take(&mut queue.uploads);
    drop(queue);
    tracing::error!(
        events = appends.len(),
        "decision log spool stopped; decisions are no longer spooled"
    );
    for (_, done) in appends {
        let _ = done.send(Err(SpoolError::Stopped));
    }
    drop(uploads);
}

/// The drainer: takes the writer whenever it is handed over with work queued, commits the
/// queued events in groups and serves the uploader until nothing is left, then puts it back.
pub(super) async fn drain(
    queue: Shared,
    mut writers: mpsc::UnboundedReceiver<Writer>,
    _end: watch::Sender<()>,
) {
    while let Some(writer) = writers.recv().await {
        let mut held = Some(writer);
        while let Some(mut writer) = held.take() {
            let (appends, uploads) = {
                let mut q = lock(&queue);
                if q.appends.is_empty() && q.uploads.is_empty() {
                    q.writer = Some(writer);
                    break;
                }
                let n = q.appends.len().min(MAX_GROUP);
                let appends: Vec<_> = q.appends.drain(..n).collect();
                (appends, std::mem::take(&mut q.uploads))
            };
            let (events, replies): (Vec<Vec<u8>>, Vec<Reply<()>>) = appends.into_iter().unzip();
            if writer.in_page_cache(&events) {
                answer(replies, writer.commit(&events));
            } else if !events.is_empty() {
                let committed = blocking(writer, move |w| answer(replies, w.commit(&events)));
                let Some(w) = committed.await else {
                    return stop(&queue);
                };
                writer = w;
            }
            let slow: Vec<Upload> = uploads
                .into_iter()
                .filter_map(|u| serve(&mut writer, u))
                .collect();
            if !slow.is_empty() {
                let Some(w) = blocking(writer, move |w| walk(w, slow)).await else {
                    return stop(&queue);
                };
                writer = w;
            }
            writer.publish();
            held = Some(writer);
        }
    }
    // Every handle is gone: the cursor as it stands, then the files and the lock go.
    let last = lock(&queue).writer.take();
    if let Some(writer) = last {
        let _ = blocking(writer, |w| w.save_cursor(true)).await;
    }
}

fn answer(replies: Vec<Reply<()>>, outcomes: Vec<Result<(), SpoolError>>) {
    for (done, outcome) in replies.into_iter().zip(outcomes) {
        let _ = done.send(outcome);
    }
}

/// Answers an upload request in memory; hands it back when it needs the files read.
fn serve(writer: &mut Writer, upload: Upload) -> Option<Upload> {
    match upload {
        Upload::View(done) => {
            let _ = done.send(Ok(writer.log.view()));
        }
        Upload::Ack(taken, done) => match writer.ack(&taken) {
            Some(acked) => {
                writer.publish();
                // Written by the acker, off the writer (`Spool::ack`), or by the next flush.
                writer.note_cursor(true);
                let _ = done.send(Ok(acked));
            }
            None => return Some(Upload::Ack(taken, done)),
        },
    }
    None
}

/// Answers the acks that `serve` could not: the spool dropped events since they were read.
fn walk(writer: &mut Writer, uploads: Vec<Upload>) {
    for upload in uploads {
        match upload {
            Upload::View(done) => {
                let _ = done.send(Ok(writer.log.view()));
            }
            Upload::Ack(taken, done) => {
                let acked = writer.ack_walk(taken.last);
                writer.save_cursor(true);
                let _ = done.send(acked);
            }
        }
    }
}

/// Runs `work` on a blocking thread and gets the writer back; `None` if that thread panicked,
/// which stops the spool.
async fn blocking(
    writer: Writer,
    work: impl FnOnce(&mut Writer) + Send + 'static,
) -> Option<Writer> {
    let done = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        work(&mut writer);
        // A cursor moved by drops is written here, after the waiters were answered.
        writer.save_cursor(false);
        writer
    })
    .await;
    match done {
        Ok(writer) => Some(writer),
        Err(error) => {
            tracing::error!(%error, "decision log spool writer failed");
            None
        }
    }
}
