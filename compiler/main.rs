fn main() {
    std::process::exit(irc::cli::main_with(std::env::args_os()));
}
