//! `tlsharness image build` and `tlsharness sweep`: the Docker side.

use std::time::Duration;

use clap::Subcommand;
use tlsharness::exit;
use tlsharness::postfix::{docker, image};

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build tlsharness/postfix:SUITE offline (debootstrap + docker import) unless present.
    Build {
        /// Debian suite: bullseye (Postfix 3.5), bookworm (3.7), trixie (3.10).
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// Build even if the image exists.
        #[arg(long)]
        rebuild: bool,
    },
}

pub async fn image(command: ImageCommand) -> i32 {
    let ImageCommand::Build { suite, rebuild } = command;
    let docker = match docker::connect(Duration::from_secs(10)).await {
        Ok(d) => d,
        Err(e) => return super::fail(&e),
    };
    match image::ensure(&docker, &suite, rebuild).await {
        Ok(image::Ensured::AlreadyPresent) => {
            println!("{} is present", image::image_for_suite(&suite));
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
                "removed {} leftover Postfix container(s), {} agent container(s) and {dirs} run director(ies)",
                swept.mtas, swept.agents
            );
            exit::SUCCESS
        }
        Err(e) => super::fail(&e),
    }
}
