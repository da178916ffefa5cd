//! `lifeboat check SPEC`: validate and summarise a spec.

use anyhow::Result;

use crate::spec::{human, SizeSpec, Spec};

pub fn check(path: &std::path::Path) -> Result<()> {
    let spec = Spec::load(path)?;
    println!(
        "{}: valid spec for {} (host {}), {} disk{}",
        path.display(),
        spec.machine.name,
        spec.machine.host,
        spec.disks.len(),
        if spec.disks.len() == 1 { "" } else { "s" }
    );
    for d in &spec.disks {
        let role = if d.preserve { " (preserved)" } else { "" };
        println!("  {}{role}: {} partitions", d.id, d.partitions.len());
        for p in &d.partitions {
            let size = match p.size {
                SizeSpec::Bytes(b) => human(b),
                SizeSpec::Rest => "rest".into(),
            };
            let fs = p.fs.map(|f| f.to_string()).unwrap_or_else(|| "raw".into());
            let label = p.label.as_deref().unwrap_or("-");
            println!("    {:<22} {:>10}  {:<6} {label}", p.name, size, fs);
            for sv in &p.subvolumes {
                println!("      subvolume {}", sv.name);
            }
        }
    }
    Ok(())
}
