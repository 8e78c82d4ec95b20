// Output folders: wick never replaces what a folder holds unless asked (--overwrite), and a model written
// over another leaves nothing of the old one beside the new weights.
#pragma once
#include <string>

namespace wick::io {

// True when dir does not exist or is an empty folder.
bool folder_is_empty(const std::string& dir);
// wick::Error "the output folder is not empty" naming dir, with `hint`, unless overwrite or the folder is empty;
// and always when dir, or a path above it, is a file (nothing can create the folder there).
void check_output_folder(const std::string& dir, bool overwrite, const std::string& hint);
// Removes the files of a Hugging Face model folder that a new model written into it would not all replace:
// *.safetensors, *.safetensors.index.json, pytorch_model*.bin*, config, generation config and tokenizer files.
// Other files stay.
void remove_model_files(const std::string& dir);

}  // namespace wick::io
