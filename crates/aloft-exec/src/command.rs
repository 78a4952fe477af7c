//! What to run: a shell script with environment variables and a working directory.

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A command for `bash`, with its environment and working directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteCommand {
    /// A bash script (may span lines).
    pub script: String,
    pub env: Vec<(String, String)>,
    /// Where to run; `None`: the login directory.
    pub cwd: Option<String>,
}

impl RemoteCommand {
    pub fn new(script: impl Into<String>) -> RemoteCommand {
        RemoteCommand {
            script: script.into(),
            ..RemoteCommand::default()
        }
    }

    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> RemoteCommand {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn cwd(mut self, dir: impl Into<String>) -> RemoteCommand {
        self.cwd = Some(dir.into());
        self
    }

    /// The whole command as one bash script: exports, `cd`, then the script.
    pub(crate) fn to_script(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.env {
            text.push_str(&format!("export {name}={}\n", shell_quote(value)));
        }
        if let Some(dir) = &self.cwd {
            text.push_str(&format!("cd {} || exit 1\n", shell_quote(dir)));
        }
        text.push_str(&self.script);
        text
    }
}

/// Quotes a string for POSIX shells: `it's` becomes `'it'\''s'`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_awkward_characters() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let command = RemoteCommand::new("echo $A")
            .env("A", "x y'z")
            .cwd("/tmp/a b");
        assert_eq!(
            command.to_script(),
            "export A='x y'\\''z'\ncd '/tmp/a b' || exit 1\necho $A"
        );
    }
}
