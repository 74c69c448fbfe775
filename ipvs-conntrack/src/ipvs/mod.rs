//! IPVS over generic netlink (work in progress: modules are declared here as they land).
