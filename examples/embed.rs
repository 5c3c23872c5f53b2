//! Embedding nsrun: an application adds its own Lua function, then runs a
//! recipe that uses it alongside `require "nsrun"`.
//!
//!     cargo run --example embed [recipe.lua]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host = nsrun::Host::new()?;
    let lua = host.lua();

    // The application's own API, next to nsrun's.
    let app = lua.create_table()?;
    app.set("name", "embed-demo")?;
    app.set(
        "greet",
        lua.create_function(|_, who: String| Ok(format!("hello, {who}")))?,
    )?;
    lua.globals().set("app", app)?;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first() {
        Some(recipe) => host.run_file(recipe, &args[1..])?,
        None => host.run_chunk(
            br#"
                local ns = require "nsrun"
                print(app.greet("recipe") .. " from " .. app.name .. ", pid " .. ns.getpid())
                local p = ns.clone("user,uts", function()
                  ns.sethostname("embedded")
                  print("child hostname: " .. ns.read_file("/proc/sys/kernel/hostname"))
                end)
                return p:wait()
            "#,
            "=embed",
            &[] as &[&str],
        )?,
    };
    std::process::exit(code)
}
