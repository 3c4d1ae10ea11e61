//! `tlsharness image build` and `tlsharness sweep`: the Docker side.

use std::time::Duration;

use clap::Subcommand;
use tlsharness::docker;
use tlsharness::exit;
use tlsharness::mta::image;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build an MTA's built-in image for a Debian suite offline
    /// (debootstrap + docker import) unless present:
    /// tlsharness/postfix:SUITE, or with --mta exim (opensmtpd)
    /// tlsharness/exim:bookworm (tlsharness/opensmtpd:bookworm).
    Build {
        /// Debian suite: bullseye (Postfix 3.5), bookworm (3.7), trixie (3.10).
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// The MTA: postfix, exim (Debian bookworm's Exim 4.96) or
        /// opensmtpd (its OpenSMTPD 6.8).
        #[arg(long, default_value = "postfix")]
        mta: tlsharness::policy::Mta,
        /// Build even if the image exists.
        #[arg(long)]
        rebuild: bool,
    },
}

pub async fn image(command: ImageCommand) -> i32 {
    let ImageCommand::Build {
        suite,
        mta,
        rebuild,
    } = command;
    let docker = match docker::connect(Duration::from_secs(10)).await {
        Ok(d) => d,
        Err(e) => return super::fail(&e),
    };
    let ensured = image::ensure(&docker, mta, &suite, rebuild).await;
    match ensured {
        Ok((name, image::Ensured::AlreadyPresent)) => {
            println!("{name} is present");
            exit::SUCCESS
        }
        Ok((_, image::Ensured::Built)) => exit::SUCCESS,
        Err(e) => super::fail(&e),
    }
}

pub async fn sweep() -> i32 {
    let docker = match docker::connect(Duration::from_secs(10)).await {
        Ok(d) => d,
        Err(e) => return super::fail(&e),
    };
    match docker::sweep(&docker).await {
        Ok(swept) => {
            let dirs = docker::sweep_run_dirs();
            println!(
                "removed {} leftover MTA container(s), {} agent container(s) and {dirs} run director(ies)",
                swept.mtas, swept.agents
            );
            exit::SUCCESS
        }
        Err(e) => super::fail(&e),
    }
}
