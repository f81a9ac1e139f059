// Mapping builds many small trees; mimalloc makes their allocation markedly cheaper.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    allocator::tune();
    // SAFETY: no other thread has started yet.
    unsafe { offersync::store::find_system_authorities() };
    offersync::cli::main()
}

mod allocator {
    use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

    // Indices into mimalloc's `mi_option_e` (v3, which libmimalloc-sys builds), which it does not name.
    pub const ARENA_EAGER_COMMIT: mi_option_t = 4;
    pub const PURGE_DELAY: mi_option_t = 15;

    /// A sync streams pages through short-lived buffers; by default mimalloc
    /// keeps freed memory for a second and commits arenas eagerly, which
    /// doubled a 100k-offer sync's peak RSS (100 MB instead of 50 MB,
    /// benches/sync.rs) at no measurable gain in speed.
    pub fn tune() {
        // mimalloc's own variable wins, for measuring other settings.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: a plain setter of one of mimalloc's global options.
            unsafe { mi_option_set(PURGE_DELAY, 0) }
        }
    }

    /// Eager commit must be off before mimalloc makes its first arena, at the
    /// first allocation, which Rust's runtime makes before `main`. So it is
    /// set from the ELF constructors, which run before the runtime starts:
    /// part of the binary itself, so that `cargo install` (which reads no
    /// `.cargo/config.toml` of ours) builds the same allocator behaviour.
    #[cfg(target_os = "linux")]
    #[used]
    #[unsafe(link_section = ".init_array")]
    static EAGER_COMMIT_OFF: extern "C" fn() = eager_commit_off;

    #[cfg(target_os = "linux")]
    extern "C" fn eager_commit_off() {
        // SAFETY: a plain setter of one of mimalloc's global options; no
        // Rust code has run yet.
        unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) }
    }

    #[allow(dead_code)] // used by the test below
    pub fn get(option: mi_option_t) -> std::os::raw::c_long {
        // SAFETY: a plain getter.
        unsafe { mi_option_get(option) }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_option_indices_are_the_options_we_mean() {
            // mimalloc v3's default purge delay (src/options.c) is 1000 ms;
            // its default arena eager commit is 2, which the constructor
            // above sets to 0 before any allocation.
            assert_eq!(get(PURGE_DELAY), 1000);
            assert_eq!(
                get(ARENA_EAGER_COMMIT),
                0,
                "the ELF constructor switched eager commit off"
            );
            tune();
            assert_eq!(get(PURGE_DELAY), 0);
        }
    }
}
