//! The `nsrun` command: run a Lua recipe that builds a sandbox.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use nsrun::{Host, RunError};

/// Prototype and run Linux isolation setups from Lua recipes.
#[derive(Parser, Debug)]
#[command(name = "nsrun", version, about, long_about = None, after_help = "\
Examples:
  nsrun examples/hello.lua          run a recipe
  nsrun -e 'print(require\"nsrun\".getpid())'
  echo 'return 3' | nsrun -          read the recipe from stdin
  nsrun --check recipe.lua          compile only

Logging: -v info, -vv debug, -vvv every kernel operation; RUST_LOG overrides.")]
struct Cli {
    /// Run CHUNK instead of a recipe file; the positional arguments become `...`.
    #[arg(short = 'e', value_name = "CHUNK")]
    chunk: Option<String>,
    /// Compile the recipe and report syntax errors without running it.
    #[arg(long)]
    check: bool,
    /// More logging (repeat for more); also shows tracebacks of errors.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// The recipe (or `-` for standard input) and its arguments. Everything
    /// after the recipe belongs to it, as with `lua script.lua -v`.
    #[arg(
        value_name = "RECIPE [ARGS]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    rest: Vec<String>,
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .format_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            report(&e, cli.verbose > 0);
            ExitCode::from(1)
        }
    }
}

fn report(e: &anyhow::Error, verbose: bool) {
    match e.downcast_ref::<RunError>() {
        Some(RunError::Uncaught { message, traceback }) => {
            eprintln!("nsrun: {message}");
            if verbose && !traceback.is_empty() {
                eprintln!("{traceback}");
            }
        }
        _ => eprintln!("nsrun: {e:#}"),
    }
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    let host = Host::new().map_err(RunError::from)?;
    if let Some(chunk) = &cli.chunk {
        let args: Vec<&str> = cli.rest.iter().map(String::as_str).collect();
        if cli.check {
            host.check(chunk.as_bytes(), "=(command line)")?;
            return Ok(0);
        }
        return Ok(host.run_chunk(chunk.as_bytes(), "=(command line)", &args)?);
    }
    let Some((recipe, args)) = cli.rest.split_first() else {
        anyhow::bail!(
            "no recipe given: nsrun RECIPE [ARGS]..., nsrun -e CHUNK, or nsrun - (see --help)"
        );
    };
    if recipe == "-" {
        let mut src = Vec::new();
        std::io::stdin().read_to_end(&mut src)?;
        if cli.check {
            host.check(&src, "=stdin")?;
            return Ok(0);
        }
        return Ok(host.run_chunk(&src, "=stdin", args)?);
    }
    if cli.check {
        let src = std::fs::read(recipe).map_err(|source| RunError::Read {
            path: recipe.clone(),
            source,
        })?;
        host.check(&src, &format!("@{recipe}"))?;
        return Ok(0);
    }
    Ok(host.run_file(recipe, args)?)
}
