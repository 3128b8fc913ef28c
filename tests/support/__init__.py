"""Helpers shared by the test modules (no tests here): paths, oracle facts, kernel inputs, model
files, result sets and throwaway project repositories."""
