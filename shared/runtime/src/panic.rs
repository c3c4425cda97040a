//! Panics are reported without their data. The standard hook prints a panic's message,
//! which may carry a value from a request (`index 17 out of range`, a formatted
//! `expect`); ours logs where it happened and only messages written into the code.
//!
//! The hook also keeps the last panic of each thread, so the layer that turns a
//! handler's panic into `INTERNAL` ([`crate::layers::catch_panic`]) logs it once, with
//! the call's error id and method, instead of the hook logging it a second time.

use std::{
    any::Any,
    cell::{Cell, RefCell},
    sync::Once,
};

/// Where a panic happened and its message, when that message is a literal of the code.
#[derive(Debug, Clone, Default)]
pub struct PanicReport {
    /// `file:line:column`.
    pub location: String,
    /// The message if it was a `&'static str`; formatted messages are withheld.
    pub message: &'static str,
}

thread_local! {
    static LAST: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
    static CAUGHT: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook once per process: `pdm serve` does, before anything runs. Test
/// processes keep the standard hook, so a failed assertion still says what failed.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let report = PanicReport {
                location: info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default(),
                message: static_message(info.payload()),
            };
            if CAUGHT.with(Cell::get) {
                LAST.with(|last| *last.borrow_mut() = Some(report));
            } else {
                tracing::error!(
                    location = %report.location,
                    message = report.message,
                    thread = std::thread::current().name().unwrap_or("unnamed"),
                    "panic"
                );
            }
        }));
    });
}

/// Runs `f` with panics reported to the caller rather than logged by the hook; returns
/// `f`'s result or the report of its panic.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, PanicReport> {
    let outer = CAUGHT.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CAUGHT.with(|c| c.set(outer));
    result.map_err(|payload| {
        LAST.with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| PanicReport {
                location: String::new(),
                message: static_message(payload.as_ref()),
            })
    })
}

fn static_message(payload: &(dyn Any + Send)) -> &'static str {
    match payload.downcast_ref::<&'static str>() {
        Some(message) => message,
        None => "(formatted message withheld: it may hold data)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The hook itself is not installed here: it would withhold the messages of every
    // other failing test in this process.
    #[test]
    #[allow(clippy::panic)]
    fn a_caught_panic_withholds_formatted_messages() {
        assert_eq!(catch(|| 7).ok(), Some(7));
        let secret = "ada@example.org";
        let report = catch(|| panic!("bad {secret}")).expect_err("panicked");
        assert!(!report.message.contains(secret), "{report:?}");
        let report = catch(|| panic!("a literal")).expect_err("panicked");
        assert_eq!(report.message, "a literal");
    }
}
