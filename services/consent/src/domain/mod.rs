//! The consent service's rules as plain functions and types: the purpose catalogue, the
//! ledger's projection into current state, and the decision precedence. No I/O.

pub mod catalogue;
pub mod decision;
pub mod event;
pub mod state;
pub mod token;
pub mod unsubscribe;
pub mod watch_scope;
