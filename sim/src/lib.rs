//! A strict host model of the seL4 memory capabilities the pager uses.
