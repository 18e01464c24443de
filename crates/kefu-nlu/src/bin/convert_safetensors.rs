//! Converts a model's `model.safetensors` into the `rust_model.ot` file rust-bert 0.20 loads
//! (tch 0.10 cannot read safetensors). Floating-point tensors are copied by name; integer buffers
//! such as `embeddings.position_ids` are not weights and are skipped.
//!
//! Usage: `kefu-convert-safetensors MODEL.safetensors OUT/rust_model.ot` (see models/fetch-minilm.sh).

use std::process::ExitCode;

use safetensors::{Dtype, SafeTensors};
use tch::{Kind, Tensor};

fn convert(input: &str, output: &str) -> Result<usize, String> {
    let bytes = std::fs::read(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{input} is not a safetensors file: {e:?}"))?;
    let mut named: Vec<(String, Tensor)> = Vec::new();
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in tensors {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            _ => continue,
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::of_data_size(view.data(), &shape, kind).to_kind(Kind::Float);
        named.push((name, t));
    }
    if named.is_empty() {
        return Err(format!("{input} holds no floating-point tensors"));
    }
    Tensor::save_multi(&named, output).map_err(|e| format!("cannot write {output}: {e}"))?;
    Ok(named.len())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        eprintln!("usage: kefu-convert-safetensors MODEL.safetensors OUT/rust_model.ot");
        return ExitCode::from(2);
    };
    match convert(input, output) {
        Ok(n) => {
            println!("wrote {n} tensors to {output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
