//! Placeholder until the test lands.
