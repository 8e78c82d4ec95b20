// Reading a file the user named (a dataset, tokenizer.json, config.json, a chat template, ...): a directory, a
// missing path or one that cannot be opened is a wick::Error naming the path and saying which ("cannot read: it
// is a directory", "cannot open: <the system's reason>"), instead of an empty stream that a caller would read as
// an empty or invalid file ("the dataset has no examples", "not valid JSON" for --data pointing at a folder).
#pragma once
#include <fstream>
#include <string>

namespace wick {

// The whole file (binary).
std::string read_file(const std::string& path);
// The file opened for reading (binary), for callers that stream it line by line.
std::ifstream open_input_file(const std::string& path);

}  // namespace wick
