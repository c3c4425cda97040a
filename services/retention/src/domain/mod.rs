//! The rules, free of I/O: periods and dates, policies and their purge cutoffs, the seed
//! from the privacy policy, legal holds, and the state of a purge run.

pub mod hold;
pub mod period;
pub mod policy;
pub mod run;
pub mod seed;
