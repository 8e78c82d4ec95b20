// Output folders: wick never replaces what a folder holds unless asked (--overwrite), and a model written
// over another leaves nothing of the old one beside the new weights.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace wick::io {

// The file a running `wick train` holds locked in its --out (OutputLock). Not output: an empty folder with
// only this file in it counts as empty, and nothing that lists or copies a run's files takes it for one.
inline constexpr const char* kLockFileName = ".wick.lock";

// True when dir does not exist or is an empty folder (the lock file alone does not count).
bool folder_is_empty(const std::string& dir);
// wick::Error "the output folder is not empty" naming dir, with `hint`, unless overwrite or the folder is empty;
// and always when dir, or a path above it, is a file (nothing can create the folder there).
void check_output_folder(const std::string& dir, bool overwrite, const std::string& hint);
// Removes the files of a Hugging Face model folder that a new model written into it would not all replace:
// *.safetensors, *.safetensors.index.json, pytorch_model*.bin*, config, generation config and tokenizer files.
// Other files stay.
void remove_model_files(const std::string& dir);

// An exclusive lock on an output folder for as long as the object lives: dir/.wick.lock (created, with dir,
// when missing), flock(LOCK_EX | LOCK_NB) on a descriptor held open, the holder's pid written into it. The
// "not empty" check happens once at the start; without the lock two runs started at once into one new folder
// would both pass it and overwrite each other's files. A second holder fails at once with wick::Error naming
// dir and the pid. Released (and the file removed) by the destructor; a process that dies or exits
// without running it releases the lock too (the kernel drops flock locks with the descriptor), leaving
// only the file, which the next holder reuses. A folder the lock created is removed with it if still empty.
class OutputLock {
 public:
  OutputLock(const std::string& dir, const std::string& flag);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  int fd_ = -1;
  std::string path_;
  std::string dir_;  // the folder, when this lock created it
};

// wick::Error unless an output never overwrites an input. out_file: a file to write (export-gguf); refused when
// it is the same file as any file directly in one of the input folders, or lies inside one under a name other
// than *.gguf. Each input is
// {flag, folder}, e.g. {"--model", "m"}; the error names out_flag, the output and the input it would overwrite.
void check_output_file_not_input(const std::string& out_file, const std::string& out_flag,
                                 const std::vector<std::pair<std::string, std::string>>& inputs);
// The same for an output folder (merge): refused when it is, lies inside or holds one of the input folders.
void check_output_folder_not_input(const std::string& out_dir, const std::string& out_flag,
                                   const std::vector<std::pair<std::string, std::string>>& inputs);

}  // namespace wick::io
