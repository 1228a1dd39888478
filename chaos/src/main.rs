use chaos::Config;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = chaos::run(Config::parse()).await?;
    report.print();
    if report.violations.total() > 0 {
        std::process::exit(1);
    }
    Ok(())
}
