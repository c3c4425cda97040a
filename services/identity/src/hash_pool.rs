//! Password hashing on a bounded pool: argon2id needs 19 MiB a hash, so hashing on the
//! unbounded blocking pool let four concurrent sign-ins take 0.8 GB. Here a fixed number
//! of worker threads (about the number of cores) each reuse one working memory; callers
//! beyond them wait in a bounded queue, and beyond that are turned away at once so a flood
//! costs neither memory nor threads. A worker idle for a while gives its memory back.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::Duration,
};

use argon2::Block;
use tokio::sync::oneshot;

use crate::domain::password;

/// How long a worker keeps its working memory without work.
const IDLE_RELEASE: Duration = Duration::from_secs(10);

/// Why hashing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every worker is busy and the queue is full: retry later.
    #[error("password hashing is at capacity")]
    Busy,
    /// The pool has stopped (the service is shutting down).
    #[error("password hashing stopped")]
    Stopped,
    /// Hashing itself failed (no randomness).
    #[error("password hashing failed")]
    Failed,
}

enum Work {
    Hash(String),
    Verify(String, String),
}

enum Outcome {
    Hashed(Option<String>),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Outcome>,
}

/// The queue the workers share. A condition variable rather than a channel behind a
/// mutex: every idle worker waits (and times out) on its own, so each can let go of its
/// memory.
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock; recover the data if one did.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Closes the queue when the last handle goes, so the workers end.
struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// A handle to the workers; cloning shares them. The workers stop when every handle is gone.
#[derive(Clone)]
pub struct HashPool {
    queue: Arc<Queue>,
    _closer: Arc<Closer>,
    workers: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("workers", &self.workers)
            .field("queue", &self.queue.capacity)
            .finish()
    }
}

impl HashPool {
    /// Starts `workers` threads (0: one per core) with room for `queue` waiting callers.
    pub fn start(workers: usize, queue: usize) -> std::io::Result<Self> {
        let workers = if workers == 0 {
            thread::available_parallelism().map_or(2, usize::from)
        } else {
            workers
        };
        let queue = Arc::new(Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: queue,
        });
        for n in 0..workers {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("pdm-hash-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self {
            _closer: Arc::new(Closer(Arc::clone(&queue))),
            queue,
            workers,
        })
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, PoolError> {
        match self.run(Work::Hash(password)).await? {
            Outcome::Hashed(Some(phc)) => Ok(phc),
            _ => Err(PoolError::Failed),
        }
    }

    /// Whether `password` matches `phc`.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, PoolError> {
        match self.run(Work::Verify(password, phc)).await? {
            Outcome::Verified(matches) => Ok(matches),
            Outcome::Hashed(_) => Err(PoolError::Failed),
        }
    }

    async fn run(&self, work: Work) -> Result<Outcome, PoolError> {
        let (reply, answer) = oneshot::channel();
        {
            let mut state = self.queue.lock();
            if state.closed {
                return Err(PoolError::Stopped);
            }
            if state.jobs.len() >= self.queue.capacity {
                return Err(PoolError::Busy);
            }
            state.jobs.push_back(Job { work, reply });
        }
        self.queue.ready.notify_one();
        answer.await.map_err(|_| PoolError::Stopped)
    }
}

/// One worker: takes jobs until the pool is closed, allocating its working memory on the
/// first job and letting go of it after `IDLE_RELEASE` without work.
fn work(queue: &Queue) {
    let mut memory: Option<Vec<Block>> = None;
    loop {
        let job = {
            let mut state = queue.lock();
            loop {
                if let Some(job) = state.jobs.pop_front() {
                    break job;
                }
                if state.closed {
                    return;
                }
                let (next, waited) = queue
                    .ready
                    .wait_timeout(state, IDLE_RELEASE)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state = next;
                if waited.timed_out() && state.jobs.is_empty() {
                    memory = None;
                }
            }
        };
        let blocks = memory.get_or_insert_with(password::memory);
        let outcome = match job.work {
            Work::Hash(secret) => Outcome::Hashed(password::hash_in(blocks, &secret).ok()),
            Work::Verify(secret, phc) => {
                Outcome::Verified(password::verify_in(blocks, &secret, &phc))
            }
        };
        // The caller may have gone (cancelled call); nothing to do then.
        let _ = job.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies_on_the_workers() {
        let pool = HashPool::start(1, 4).expect("pool");
        let phc = pool
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        assert!(
            pool.verify("correct horse battery".into(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(
            !pool
                .verify("wrong horse battery".into(), phc)
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn callers_beyond_the_queue_are_turned_away() {
        // One worker and room for one waiting caller: of many at once, at least one is
        // busy-refused and none fails otherwise.
        let pool = HashPool::start(1, 1).expect("pool");
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash("correct horse battery".into()).await })
            })
            .collect();
        let mut busy = 0;
        let mut done = 0;
        for call in calls {
            match call.await.expect("task") {
                Ok(_) => done += 1,
                Err(PoolError::Busy) => busy += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(busy >= 1, "no caller was turned away");
        assert!(done >= 1, "no caller was served");
    }
}
