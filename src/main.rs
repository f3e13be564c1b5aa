//! The `hearth` binary: parse the command line, start, and turn any
//! start-up problem into one sentence and exit status 2.

use std::process::ExitCode;

use hearth::config::{self, Command};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if hearth::cli::is_subcommand(&args) {
        return match hearth::cli::run(&args, &|k| std::env::var(k).ok()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    let command = match config::parse_args(&args, &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    match command {
        Command::Help => {
            print!("{}", config::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("hearth {}", hearth::VERSION);
            ExitCode::SUCCESS
        }
        Command::Run(config) => match hearth::run(*config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
    }
}

fn fail(e: &hearth::error::StartupError) -> ExitCode {
    eprintln!("hearth: {e}");
    ExitCode::from(e.exit_code() as u8)
}
