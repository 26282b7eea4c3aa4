/* Paths relative to a base folder. */
#ifndef GP_PATH_H
#define GP_PATH_H

#include <sys/types.h>

/* `path` if absolute, else base_dir/path, lexically normalised ("a/./b/../c" -> "a/c").
 * malloc'd; caller frees. */
char *gp_path_resolve(const char *base_dir, const char *path);
/* The folder of a file path as an absolute path (malloc'd). */
char *gp_path_dirname_abs(const char *file);
/* Is it a readable regular file / an existing folder? */
int gp_path_is_file(const char *path);
int gp_path_is_dir(const char *path);
/* mkdir -p: create dir and its missing parents with mode. 0, or -1 with errno set (ENOTDIR
 * when it exists as something else). */
int gp_path_mkdirs(const char *dir, mode_t mode);
/* Can the process keep files in folder `dir`: it is a writable folder, or its nearest
 * existing ancestor is one (so gp_path_mkdirs would create it)? 1, or 0 with the reason in
 * why (caller's buffer), e.g. "/srv/gp is not a folder". Creates nothing. */
int gp_path_dir_usable(const char *dir, char *why, size_t whylen);

#endif
