//! System-test helpers.
