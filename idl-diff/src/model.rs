//! A generated IDL program as text in two levels (files of items, items of child lines), so that the
//! shrinker can delete files, definitions, fields and values without knowing the grammar.

use std::path::Path;

/// One generated program: `files[0]` is the file given to both compilers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The files, main first.
    pub files: Vec<File>,
}

/// One IDL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Path relative to the program's directory (`main.thrift`, `sub/b.thrift`).
    pub path: String,
    /// Headers and definitions in order.
    pub items: Vec<Item>,
}

/// A header or definition: `head`, then each child on its own line, then `tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The first line (`struct S {`, or a whole one-line definition).
    pub head: String,
    /// Lines inside (fields, enum values, functions, container elements).
    pub children: Vec<String>,
    /// The closing text (`}`), empty for one-line items.
    pub tail: String,
}

impl Item {
    /// A one-line item.
    pub fn line(text: impl Into<String>) -> Item {
        Item { head: text.into(), children: Vec::new(), tail: String::new() }
    }

    /// A block item.
    pub fn block(head: impl Into<String>, children: Vec<String>, tail: impl Into<String>) -> Item {
        Item { head: head.into(), children, tail: tail.into() }
    }
}

impl File {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for item in &self.items {
            out.push_str(&item.head);
            out.push('\n');
            for child in &item.children {
                out.push_str("  ");
                out.push_str(child);
                out.push('\n');
            }
            if !item.tail.is_empty() {
                out.push_str(&item.tail);
                out.push('\n');
            }
        }
        out
    }
}

impl Program {
    /// Writes every file under `dir` (which is emptied first).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        for file in &self.files {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, file.render())?;
        }
        Ok(())
    }

    /// Every program with one piece removed: a file (not the main one), an item, or a child line.
    /// Larger pieces come first, so shrinking converges quickly.
    pub fn smaller(&self) -> Vec<Program> {
        let mut out = Vec::new();
        for f in 1..self.files.len() {
            let mut p = self.clone();
            p.files.remove(f);
            out.push(p);
        }
        for (f, file) in self.files.iter().enumerate() {
            for i in 0..file.items.len() {
                let mut p = self.clone();
                p.files[f].items.remove(i);
                out.push(p);
            }
        }
        for (f, file) in self.files.iter().enumerate() {
            for (i, item) in file.items.iter().enumerate() {
                for c in 0..item.children.len() {
                    let mut p = self.clone();
                    p.files[f].items[i].children.remove(c);
                    out.push(p);
                }
            }
        }
        out
    }
}
