fn main() -> std::process::ExitCode {
    offersync::cli::main()
}
