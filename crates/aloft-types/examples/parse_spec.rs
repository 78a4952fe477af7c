//! Prints what the spec parser makes of a file: `cargo run -p aloft-types --example parse_spec -- FILE`.

fn main() {
    let Some(file) = std::env::args().nth(1) else {
        eprintln!("usage: parse_spec FILE");
        std::process::exit(2);
    };
    let source = match std::fs::read_to_string(&file) {
        Ok(source) => source,
        Err(error) => {
            eprintln!("{file}: {error}");
            std::process::exit(2);
        }
    };
    match aloft_types::parse_dag_with_warnings(&source, &file) {
        Ok((dag, warnings)) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            println!("{dag:#?}");
        }
        Err(errors) => {
            eprintln!("{errors}");
            std::process::exit(1);
        }
    }
}
