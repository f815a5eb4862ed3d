// GNU readline for the REPL. readline.h needs <stdio.h> (FILE) included before it.
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>

// readline's state lives in C globals, which Swift 6 refuses to touch directly (shared mutable
// state); these accessors are the REPL's only way in. The REPL uses readline from one thread.
static inline void scry_rl_configure(const char *name, const char *word_breaks, rl_completion_func_t *complete) {
  rl_catch_signals = 0;
  rl_catch_sigwinch = 0;
  rl_readline_name = name;
  rl_completer_word_break_characters = (char *)word_breaks;
  rl_attempted_completion_function = complete;
}
// Typed-ahead bytes readline already took off the terminal (it gathers them while inserting), so
// the terminal's fd no longer reports them: the caller must feed readline again without waiting.
// `_rl_pushed_input_available` is exported by libreadline but not declared in its headers.
extern int _rl_pushed_input_available(void);
static inline int scry_rl_has_buffered_input(void) { return rl_pending_input != 0 || _rl_pushed_input_available(); }
// Raw mode kept while no line is being read: see LineEditor.install.
static inline void scry_rl_keep_terminal_raw(void) { rl_prep_terminal(0); }
static inline int scry_rl_point(void) { return rl_point; }
static inline void scry_rl_set_point(int point) { rl_point = point; }
static inline int scry_rl_end(void) { return rl_end; }
static inline const char *scry_rl_line_buffer(void) { return rl_line_buffer; }
static inline void scry_rl_completion_over(void) { rl_attempted_completion_over = 1; }
static inline void scry_rl_set_append_character(int c) { rl_completion_append_character = c; }
