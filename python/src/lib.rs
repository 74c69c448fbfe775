//! The native module `ipvsct._native`: pyo3 classes over the owned types of `ipvs-conntrack`.
use pyo3::prelude::*;

/// The `ipvsct._native` module.
#[pymodule]
fn _native(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
