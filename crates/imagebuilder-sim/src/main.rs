//! `imagebuilder-sim`: a simulated AWS EC2 Image Builder account (see
//! `cli.rs` for the command line).

fn main() -> std::process::ExitCode {
    imagebuilder_sim::cli::main()
}
