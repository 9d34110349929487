//! Configuration and control plane.
