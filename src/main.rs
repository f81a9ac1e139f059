// Mapping builds many small trees; mimalloc makes their allocation markedly cheaper.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    offersync::cli::main()
}
