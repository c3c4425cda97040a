//! The console's rules as plain functions: one-time codes and operator passwords.

pub mod password;
pub mod totp;
