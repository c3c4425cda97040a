//! Task results, written together. A worker's tasks end one by one, and each end was a
//! statement of its own (on PostgreSQL a commit, each waiting for a WAL flush), then a
//! count of what was left of its request: the largest share of the rights database's
//! statements per data-subject request (docs/scale.md, "Task results, written
//! together"). The recorder writes every end that arrived while its previous write ran in
//! one statement, then asks in one more which of their requests have nothing left to
//! run. An idle worker's end is written at once: batching never waits for a batch.

use std::collections::HashSet;

use pdm_runtime::SharedClock;
use tokio::sync::{mpsc, oneshot};

use crate::{
    error::{Result, RightsError},
    store::{Store, TaskEnd},
};

/// Most task ends written in one statement (9 bound values each: far inside both
/// databases' limits on a statement's values).
pub const MAX_BATCH: usize = 64;

/// What recording a task's end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Stored: the task was still under its run's claim (false: another replica took it
    /// over, and its result is the one that counts).
    pub stored: bool,
    /// The task's request has no task left to run, and this end is the one of its batch
    /// that closes it.
    pub closes_request: bool,
}

type Waiting = (TaskEnd, oneshot::Sender<Result<Recorded>>);

/// Hands task ends to the writer ([`Recorder::start`]).
#[derive(Debug, Clone)]
pub struct Recorder {
    ends: mpsc::Sender<Waiting>,
}

impl Recorder {
    /// Starts the writer; it stops once every clone of the recorder is dropped, after
    /// writing what it was handed.
    pub fn start(store: Store, clock: SharedClock) -> Self {
        let (ends, waiting) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(write_loop(store, clock, waiting));
        Self { ends }
    }

    /// Records a task's end, with the ends that arrive beside it.
    pub async fn record(&self, end: TaskEnd) -> Result<Recorded> {
        let stopped = || RightsError::Internal("the task recorder stopped");
        let (reply, answer) = oneshot::channel();
        self.ends.send((end, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_loop(store: Store, clock: SharedClock, mut waiting: mpsc::Receiver<Waiting>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (ends, replies): (Vec<TaskEnd>, Vec<_>) = batch.drain(..).unzip();
        match write(&store, &ends, &clock).await {
            Ok(recorded) => {
                for (reply, recorded) in replies.into_iter().zip(recorded) {
                    let _ = reply.send(Ok(recorded));
                }
            }
            Err(e) => {
                let kind = match &e {
                    RightsError::Db(db) => pdm_runtime::error::db_error_kind(db).to_string(),
                    other => other.to_string(),
                };
                tracing::warn!(tasks = ends.len(), error = %kind, "recording task results failed");
                for reply in replies {
                    let _ = reply.send(Err(RightsError::Internal(
                        "recording the task's result failed",
                    )));
                }
            }
        }
    }
}

/// Writes a batch of ends and finds the requests they leave with nothing to run. When
/// that second question fails the results stay stored and the requests are closed by the
/// worker's housekeeping instead (`close_finished`).
async fn write(store: &Store, ends: &[TaskEnd], clock: &SharedClock) -> Result<Vec<Recorded>> {
    let stored = store.finish_tasks(ends, clock.now()).await?;
    let touched: HashSet<&str> = ends
        .iter()
        .zip(&stored)
        .filter(|(_, stored)| **stored)
        .map(|(e, _)| e.task.request_id.as_str())
        .collect();
    let open = match store.with_unfinished_tasks(touched.iter().copied()).await {
        Ok(open) => Some(open),
        Err(e) => {
            tracing::warn!(error = %e, "counting what is left of requests failed; housekeeping will close them");
            None
        }
    };
    let requests: Vec<&str> = ends.iter().map(|e| e.task.request_id.as_str()).collect();
    Ok(stored
        .iter()
        .zip(closers(&requests, &stored, open.as_ref()))
        .map(|(&stored, closes_request)| Recorded {
            stored,
            closes_request,
        })
        .collect())
}

/// Which ends close their request: a stored end whose request has no unfinished task
/// (`open` lists those that do; None when unknown, then none closes), one per request.
fn closers(requests: &[&str], stored: &[bool], open: Option<&HashSet<String>>) -> Vec<bool> {
    let Some(open) = open else {
        return vec![false; requests.len()];
    };
    let mut closing = HashSet::new();
    requests
        .iter()
        .zip(stored)
        .map(|(&request, &stored)| stored && !open.contains(request) && closing.insert(request))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_end_closes_a_request_with_nothing_left() {
        let closes = closers(&["a", "a", "b"], &[true, true, true], Some(&open(&[])));
        assert_eq!(closes, [true, false, true]);
    }

    #[test]
    fn a_request_with_a_task_left_is_not_closed() {
        let closes = closers(&["a", "b"], &[true, true], Some(&open(&["a"])));
        assert_eq!(closes, [false, true]);
    }

    #[test]
    fn an_end_another_replica_took_over_closes_nothing() {
        // Its request's last word is the other replica's, which counts for itself.
        let closes = closers(&["a", "a"], &[false, true], Some(&open(&[])));
        assert_eq!(closes, [false, true]);
        assert_eq!(closers(&["a"], &[false], Some(&open(&[]))), [false]);
    }

    #[test]
    fn without_the_count_nothing_closes() {
        assert_eq!(closers(&["a", "b"], &[true, true], None), [false, false]);
    }
}
