//! Read and write Haiku packages (`.hpkg`) and repository indexes (`.hpkr`).
