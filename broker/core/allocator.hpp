// The process's allocator, as far as respq speaks to it: mimalloc when respq-server runs
// on it (linked as a shared library, found at run time), else libc's malloc (the test
// and sanitizer builds), for which these say "libc" and do nothing.
#pragma once

#include <string>

namespace respq::core {

// "mimalloc-2.0.9" when the process runs on mimalloc, else "libc" (INFO's mem_allocator).
std::string allocator_name();

// Asks the allocator to collect what the calling thread's heap holds free: blocks other
// threads freed into its pages (a request made on the broker thread is let go on the
// engine's), pages left empty, and segments left empty, which go back to the operating
// system: most of what a FLUSHALL frees (with 3 million keys RSS fell from 1.22 GB to
// 286 MB, where it stayed at 1.22 GB without). Empty pages inside a segment that still
// holds live blocks stay resident until mimalloc next takes a page there. `force` (MEMORY
// PURGE) also takes in what exited threads left. Cost: a walk over the thread's pages
// (about 0.5 ms with 1.2 GB of keys); the server calls it once a second (server::cron).
void release_free_memory(bool force);

}  // namespace respq::core
