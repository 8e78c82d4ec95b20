// wick: the command line. Thin: parse, call the library, print. Every subcommand lives in its own file
// (cli/cmd_*.cpp) and registers itself here.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"wick: fine-tune and run Hugging Face transformer LLMs with LoRA, from C++ (CPU and CUDA)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "wick 0.1.0");
  wick::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A usage mistake is one line and exit code 1, like any other bad input.
    std::fprintf(stderr, "wick: error: %s (see --help)\n", e.what());
    return 1;
  } catch (const wick::Error& e) {
    std::fprintf(stderr, "wick: error: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the system refused (a folder that cannot be created, a full disk, no permission): the path and the
    // system's reason, as a bad input, not as wick's own failure.
    std::string what = e.what();  // "filesystem error: cannot create directories: No such file ... [PATH]"
    if (what.rfind("filesystem error: ", 0) == 0) what.erase(0, 18);
    if (const size_t at = what.find(" ["); at != std::string::npos) what.erase(at);
    std::fprintf(stderr, "wick: error: %s: %s (hint: check the path, its permissions and the free space)\n",
                 e.path1().string().c_str(), what.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wick: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
