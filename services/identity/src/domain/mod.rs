//! The identity service's rules as plain functions and types: no I/O, unit-tested.

pub mod age;
pub mod calendar;
pub mod categories;
pub mod content;
pub mod email;
pub mod organisation;
pub mod password;
pub mod phone;
pub mod public_profile;
pub mod regime;
pub mod special;
pub mod throttle;
