use clap::Parser as _;

fn main() -> std::process::ExitCode {
    hairpin::cli::main(hairpin::cli::Cli::parse())
}
