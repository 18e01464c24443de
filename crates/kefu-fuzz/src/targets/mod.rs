//! The fuzz targets, one module each, and the registry the command line is built from.
//!
//! Adding a target (the conversation policy of kefu-core, Telegram/Discord update conversion…):
//! write `src/targets/<name>.rs` with a type implementing [`Target`] and a `pub const INFO:
//! TargetInfo`, then add one line to [`REGISTRY`]. The driver gives it a seeded [`Rng`], catches
//! its panics, counts its failures and prints the figures.

use crate::corpus::Corpus;
use crate::rng::Rng;

pub mod kb;
pub mod normalize;
pub mod secrets;

/// One input: one or more texts (KB files, or a conversation's messages, or one message).
pub type Input = Vec<String>;

/// A property-checked component.
pub trait Target {
    /// A new input, built from real data and mutations.
    fn generate(&mut self, rng: &mut Rng) -> Input;

    /// Runs the component on `input` and checks its properties: `Err` names the property that
    /// failed. A panic inside is caught and counted by the driver.
    fn check(&mut self, input: &Input) -> Result<(), String>;

    /// Figures worth printing after a run besides the driver's (e.g. how often a planted secret
    /// was found).
    fn summary(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What the command line needs to know of a target.
#[derive(Debug, Clone, Copy)]
pub struct TargetInfo {
    /// The subcommand.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Builds the target from the corpus of real inputs.
    pub build: fn(&Corpus) -> Box<dyn Target>,
}

/// Every target, in `--help` order.
pub const REGISTRY: &[TargetInfo] = &[kb::INFO, normalize::INFO, secrets::INFO];
