//! The package root on disk: `active.list`, generations, the retained store and
//! transactions. Not yet filled: see issue 4.
