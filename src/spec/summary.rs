//! A spec summed up for a person: what `lifeboat check` and the menu print after loading it.

use super::{human, SizeSpec, Spec};

pub fn summary(spec: &Spec) -> String {
    let mut out = format!(
        "{}: valid spec for {} (host {}), {} disk{}\n",
        spec.file.display(),
        spec.machine.name,
        spec.machine.host,
        spec.disks.len(),
        if spec.disks.len() == 1 { "" } else { "s" }
    );
    for d in &spec.disks {
        let role = if d.preserve { " (preserved)" } else { "" };
        out.push_str(&format!(
            "  {}{role}: {} partitions\n",
            d.id,
            d.partitions.len()
        ));
        for p in &d.partitions {
            let size = match p.size {
                SizeSpec::Bytes(b) => human(b),
                SizeSpec::Rest => "rest".into(),
            };
            let fs = p.fs.map(|f| f.to_string()).unwrap_or_else(|| "raw".into());
            let label = p.label.as_deref().unwrap_or("-");
            out.push_str(&format!(
                "    {:<22} {:>10}  {:<6} {label}\n",
                p.name, size, fs
            ));
            for sv in &p.subvolumes {
                out.push_str(&format!("      subvolume {}\n", sv.name));
            }
        }
    }
    out
}
