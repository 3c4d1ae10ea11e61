//! `tlsharness image build` and `tlsharness sweep`: the Docker side.

use std::time::Duration;

use clap::Subcommand;
use tlsharness::docker;
use tlsharness::exit;
use tlsharness::mta::image;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build tlsharness/postfix:SUITE (or, with --mta exim,
    /// tlsharness/exim:bookworm) offline (debootstrap + docker import)
    /// unless present.
    Build {
        /// Debian suite: bullseye (Postfix 3.5), bookworm (3.7), trixie (3.10).
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// The MTA: postfix, or exim (Debian bookworm's Exim 4.96).
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
    let (ensured, name) = match mta {
        tlsharness::policy::Mta::Postfix => (
            image::ensure(&docker, &suite, rebuild).await,
            image::image_for_suite(&suite),
        ),
        tlsharness::policy::Mta::Exim => (
            image::ensure_exim(&docker, rebuild).await,
            image::EXIM_IMAGE.to_owned(),
        ),
    };
    match ensured {
        Ok(image::Ensured::AlreadyPresent) => {
            println!("{name} is present");
            exit::SUCCESS
        }
        Ok(image::Ensured::Built) => exit::SUCCESS,
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
