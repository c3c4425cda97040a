//! Running the built `pdm` command line as the privacy team against a test mesh: what the
//! command-line tests share.

use std::{path::Path, process::Command};

use pdm_testkit::Mesh;

/// Runs `pdm <service> <args>` with a clean environment pointed at the mesh's `service`,
/// with the mesh's admin certificate; its exit success and its output (stdout, then
/// stderr).
pub async fn pdm(
    mesh: &Mesh,
    dir: &Path,
    service: &str,
    args: &[&str],
) -> anyhow::Result<(bool, String)> {
    let addr = mesh
        .addr(service)
        .ok_or_else(|| anyhow::anyhow!("{service} is not running"))?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command
        .env_clear()
        .current_dir(dir)
        .env(
            format!("PDM__SERVICES__{}__ENDPOINT", service.to_uppercase()),
            format!("http://{addr}"),
        )
        .env("PDM__TLS__DIR", mesh.certificate_dir())
        .arg(service)
        .args(args);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    // The mesh serves from this process's runtime: wait for the child off it.
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let text = format!(
        "{}{}",
        String::from_utf8(output.stdout)?,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}
